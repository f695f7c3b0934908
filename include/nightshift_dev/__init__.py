"""The tooling around nightshift: the benchmark, the simulator and the demo driver (not part of the product)."""
