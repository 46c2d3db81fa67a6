"""Event-driven evaluator (SimPy) of tile programs.

Public: :func:`simulate`; :func:`program_energy_j` (a run re-accounted on another energy
table); :func:`validate_program` / :func:`compile_program` check a program
against an architecture (shared with :func:`archsim.estimate`).
"""

from archsim.engine._account import program_energy_j
from archsim.engine._compile import compile_program, validate_program
from archsim.engine._sim import simulate

__all__ = ["compile_program", "program_energy_j", "simulate", "validate_program"]
