"""Sub-commands of the ``fcn-course`` command line, one module per group."""
