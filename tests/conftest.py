"""pytest configuration: hypothesis profiles for the parity suite.

pytest --hypothesis-profile=ci       # what CI runs (derandomized, 200 examples per layer)
pytest --hypothesis-profile=dev      # quick local run (the default)
pytest --hypothesis-profile=nightly  # long randomized run
"""

from parity import profiles

profiles.register()
