"""Renders an SVG to PNG with resvg (an independent renderer: the resvg-py
wheel in the project venv), without any system font, so that text drawn as
glyph outlines is all that can show. Used by the chart test in
tests/cli_eval.rs to compare mixco's SVG with mixco's own PNG.

    .venv/bin/python scripts/svg_render.py IN.svg OUT.png ZOOM
"""
import sys

import resvg_py


def main(svg, out, zoom):
    png = resvg_py.svg_to_bytes(svg_path=svg, zoom=float(zoom), skip_system_fonts=True, background="#ffffff")
    with open(out, "wb") as f:
        f.write(bytes(png))


if __name__ == "__main__":
    main(*sys.argv[1:4])
