"""The testinfra suite run inside every model pod (``kubectl://``) or against a local process (``local://``)."""
