"""Cycle- and energy-level model of the papers' LSTM accelerators, driven by trained models."""
from .config import Accel, HardwareConfigError, Tech, Workload, load_accel
from .model import Report, amdahl_bound, analytic, simulate
from .report import print_report
from .trace import analyse_model, load_model, write_report

__all__ = ["Accel", "HardwareConfigError", "Report", "Tech", "Workload", "amdahl_bound", "analytic", "load_accel",
           "simulate", "print_report", "analyse_model", "load_model", "write_report"]
