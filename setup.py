"""Only the optional C accelerators of the WBXML and XML readers (the WBXML one also
maps messages between trees and the model) and of the DM listener's HTTP request-head
reader; the rest is in setup.cfg.

``optional=True``: where one cannot be compiled (no compiler, no Python
headers, for the XML one no libexpat headers: Debian's libexpat1-dev) the
install goes on without it and the pure-Python reader, the reference, does
all the work.
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("dmgateway.codec._wbxml_speedups", ["dmgateway/codec/_wbxml_speedups.c"],
              depends=["dmgateway/codec/_node_layout.h", "dmgateway/codec/_model_mapping.h",
                       "dmgateway/codec/_message_tree.h", "dmgateway/codec/_xml_tree.h"],
              optional=True),
    Extension("dmgateway.codec._xml_speedups", ["dmgateway/codec/_xml_speedups.c"],
              depends=["dmgateway/codec/_node_layout.h"], libraries=["expat"], optional=True),
    Extension("dmgateway.bearers._http1_speedups", ["dmgateway/bearers/_http1_speedups.c"], optional=True),
])
