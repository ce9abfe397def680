"""Cycle- and energy-level model of the papers' LSTM accelerators, driven by trained models."""
from .config import Accel, HardwareConfigError, Tech, Workload, load_accel
from .model import Report, amdahl_bound, analytic, simulate, weight_memory_bits

__all__ = ["Accel", "HardwareConfigError", "Report", "Tech", "Workload", "amdahl_bound", "analytic", "load_accel",
           "simulate", "weight_memory_bits"]
