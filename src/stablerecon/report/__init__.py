"""Figures and the self-contained HTML report of an audit.

:func:`write_report` draws every figure of an :class:`~stablerecon.audit.AuditResult` into
``figures/*.png`` and writes ``report.html`` with the figures embedded (base64 PNG), the
summary table and one verdict per method, so the file can be mailed or archived alone.

What lives here: the figures (``figures``), the findings and the HTML page (``html``, with the
jinja2 template in ``templates/``). It reads any object shaped like an audit result (typing-only
imports of :mod:`stablerecon.audit` aside) and may import :mod:`stablerecon.contracts` and
:mod:`stablerecon.files`; the audit calls it, never the other way round.
"""

from .figures import FIGURES, draw_figures
from .html import findings, render_html, write_report

__all__ = ["write_report", "render_html", "findings", "draw_figures", "FIGURES"]
