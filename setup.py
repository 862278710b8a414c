"""Only the optional C accelerator of the WBXML reader; the rest is in setup.cfg.

``optional=True``: where it cannot be compiled (no compiler, no Python
headers) the install goes on without it and the pure-Python reader, the
reference, does all the work.
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("dmgateway.codec._wbxml_speedups", ["dmgateway/codec/_wbxml_speedups.c"],
              optional=True),
])
