"""The wire format: parameters, their form encoding, and the models answers are read into."""
