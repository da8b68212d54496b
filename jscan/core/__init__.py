"""Core: the JAX forward models (types, optics, propagation, kernel, sharding, scopes). No I/O."""
