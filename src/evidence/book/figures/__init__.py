"""Figures for the evidence book (matplotlib, imported only when a figure is drawn).

Forest plots (``forest``, ``cumulative_forest``, ``leave_one_out_plot``), a funnel
plot, a meta-regression bubble plot, a heatmap of HER2-category transitions and a
PRISMA-style patient-flow diagram.

Conventions shared by every function:

- ``ax=None`` creates a new Figure of a fixed, content-dependent size; passing an
  Axes draws into it (text columns of the forest plots are then placed outside the
  Axes, at fixed distances in inches, so leave room around it).  The Figure is
  always returned; nothing is shown and no global backend is set.
- Figures created here are plain :class:`matplotlib.figure.Figure` objects (not
  registered with pyplot, so nothing leaks between calls) that also know how to
  display themselves in Jupyter (``_repr_png_``), with or without ``%matplotlib``.
- Output is deterministic: no jitter, no random state, fixed sizes.
- Colours come from the Okabe-Ito palette and the ``cividis`` colour map, both safe
  for colour-vision deficiencies; intervals also differ by line style, not colour
  alone.  Fonts are matplotlib's default (DejaVu Sans).
- Artists that tests and readers may want to find carry a ``gid``:
  ``"study_markers"``, ``"study_ci"``, ``"pooled_diamond"``,
  ``"prediction_interval"``, ``"refline"``, ``"direction_label"``, ``"pooled_estimate"``,
  ``"pooled_ci_band"``, ``"pseudo_ci"``, ``"bubbles"``, ``"fitted_line"``,
  ``"transition_cells"``, ``"cell_text"``, ``"flow_box"``, ``"flow_arrow"``.

Measures use metafor's codes; on the natural scale the single-proportion measures
(``PLO``, ``PFT``, ``PAS``, ``PR``) show proportions and ``RR``/``OR``/``HR`` show
ratios on a logarithmic axis.  Back-transformations come from
:func:`evidence.stats.transforms.back_transform` (metafor's ``transf.*`` functions).
"""

from __future__ import annotations

from evidence.book.figures._base import PALETTE
from evidence.book.figures.diagnostics import bubble, funnel
from evidence.book.figures.diagrams import flow_diagram, transition_heatmap, two_arm_figure
from evidence.book.figures.forest import caterpillar, cumulative_forest, forest, leave_one_out_plot

__all__ = [
    "PALETTE",
    "bubble",
    "caterpillar",
    "cumulative_forest",
    "flow_diagram",
    "forest",
    "funnel",
    "leave_one_out_plot",
    "transition_heatmap",
    "two_arm_figure",
]
