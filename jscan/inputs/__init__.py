"""Inputs: the config schema, probes, samples and scan geometry. numpy only, no JAX."""
