"""pytest configuration: hypothesis profiles for the parity suite, and the quiet
TensorFlow environment.

pytest --hypothesis-profile=ci       # what CI runs (derandomized, 100 drawn examples per layer)
pytest --hypothesis-profile=dev      # quick local run (the default)
pytest --hypothesis-profile=nightly  # long randomized run
"""

from parity import profiles, settings

profiles.register()
# Before any test module imports TensorFlow: the reference settings and the quiet
# environment (parity/settings.py), which the tests' subprocesses (the CLI runs) inherit.
settings.quiet_tensorflow()
