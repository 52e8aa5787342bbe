"""The ``pck`` command line (installed as the package ``pckernels_cli``)."""
