"""Figures and the self-contained HTML report of an audit.

:func:`write_report` draws every figure of an :class:`~stablerecon.audit.AuditResult` into
``figures/*.png`` and writes ``report.html`` with the figures embedded (base64 PNG), the
summary table and one verdict per method, so the file can be mailed or archived alone.
"""

from .figures import FIGURES, draw_figures
from .html import findings, render_html, write_report

__all__ = ["write_report", "render_html", "findings", "draw_figures", "FIGURES"]
