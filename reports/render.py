"""Render a table (title, header, rows of strings, footnotes) as Markdown or LaTeX.

The table content is decided in ``reports.generate``; this module only knows about layout and
escaping, so both formats always show the same cells.
"""

from __future__ import annotations

from dataclasses import dataclass

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "Δ": r"$\Delta$", "μ": r"$\mu$", "σ": r"$\sigma$", "×": r"$\times$",
                  "→": r"$\to$", "−": "-", "—": "---", "–": "--", "±": r"$\pm$", "†": r"$\dagger$"}


@dataclass(frozen=True)
class Grid:
    title: str
    header: list[str]
    rows: list[list[str]]
    footnotes: list[str]


def markdown(grid: Grid) -> str:
    """A GitHub-flavoured Markdown table with the title above and footnotes below."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [f"# {grid.title}", "", line(grid.header), line(["---"] * len(grid.header))]
    out += [line(r) for r in grid.rows]
    out += [""] + [f"- {note}" for note in grid.footnotes]
    return "\n".join(out) + "\n"


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def latex(grid: Grid) -> str:
    """A booktabs ``tabular`` inside a ``table`` float, footnotes as a list below it."""
    spec = "l" * len(grid.header)
    out = [r"\begin{table}[htbp]", r"\centering", r"\scriptsize", rf"\caption{{{latex_escape(grid.title)}}}",
           rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(latex_escape(h) for h in grid.header) + r" \\",
           r"\midrule"]
    out += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in grid.rows]
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    if grid.footnotes:
        out += [r"\begin{itemize}"] + [rf"\item {latex_escape(n)}" for n in grid.footnotes] + [r"\end{itemize}"]
    return "\n".join(out) + "\n"
