"""Worked examples of nntk, run by `nntk-parity example NAME` (nntk_examples/command.py):

personalize   on-device personalisation of the keyword detector, beside the same
              run in tf.keras (personalize.py)
"""
