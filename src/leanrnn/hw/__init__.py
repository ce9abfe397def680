"""Cycle- and energy-level model of the papers' LSTM accelerators, driven by trained models."""
from .config import Accel, HardwareConfigError, Tech, Workload, load_accel
from .model import Report, analytic, simulate, weight_memory_bits

__all__ = ["Accel", "Tech", "Workload", "HardwareConfigError", "load_accel", "Report", "analytic", "simulate",
           "weight_memory_bits"]
