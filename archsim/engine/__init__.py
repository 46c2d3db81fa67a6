"""Event-driven evaluator (SimPy) of tile programs.

Public: :func:`simulate`; :func:`validate_program` / :func:`compile_program` check a program
against an architecture (shared with :func:`archsim.estimate`).
"""

from archsim.engine._compile import compile_program, validate_program
from archsim.engine._sim import simulate

__all__ = ["compile_program", "simulate", "validate_program"]
