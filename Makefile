# dmgateway — the two commands a newcomer needs:
#   make run    install into .venv, then start the daemon in the foreground on conf/
#   make test   install the test peers and the virtualenv, then run the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
CONF   ?= conf
# Debian packages the test suite drives (real peers), see README "Tests".
TEST_DEBS = libwbxml2-utils libexpat1-dev postgresql sip-tester snmp snmptrapd openssl chromium haproxy
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run test test-deps check-config bench clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg setup.py pyproject.toml constraints.txt dmgateway/codec/_wbxml_speedups.c dmgateway/codec/_xml_speedups.c dmgateway/codec/_node_layout.h dmgateway/codec/_model_mapping.h dmgateway/bearers/_http1_speedups.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]' --config-settings editable_mode=compat
	# regenerate Twisted's plugin dropin cache so `twistd dmgateway` is found at once
	$(BIN)/python -c 'from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))'
	touch $@

var/api.token:
	mkdir -p var
	umask 077 && $(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(32))' > $@
	@echo "created REST API token in $@"

run: install var/api.token
	$(BIN)/twistd --nodaemon --pidfile= dmgateway --config-dir $(CONF)

check-config: install
	$(BIN)/twistd --nodaemon --pidfile= dmgateway --check-config --config-dir $(CONF)

test-deps:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# the SMSC simulator the SMPP interop tests run (a third-party SMPP server, npm package smpp)
var/node/node_modules/smpp:
	mkdir -p var/node
	npm install --prefix var/node --no-audit --no-fund --loglevel=error smpp@0.5.1

test: test-deps install var/node/node_modules/smpp
	$(BIN)/python -m pytest -q tests

bench: install
	$(BIN)/python bench/codec.py

clean:
	rm -rf $(VENV) build *.egg-info
