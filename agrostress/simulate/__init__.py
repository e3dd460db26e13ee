"""The PROSAIL field simulator: labelled Sentinel-2 L2A cubes of healthy, N-deficient and
yellow-rust wheat fields (see ``docs/simulator.md``)."""

from agrostress.simulate.scene import SimulationConfig, simulate_scene
from agrostress.simulate.writer import read_fields, write_scene

__all__ = ["SimulationConfig", "read_fields", "simulate_scene", "write_scene"]
