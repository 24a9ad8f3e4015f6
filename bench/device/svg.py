"""What the SVG charts of bench/device/ share (no plotting library needed): the document's frame,
a legend row and writing the file."""


def begin(w, h, title, title_y=18):
    """The opening lines of a w x h chart with `title` centred on top, its baseline at `title_y`."""
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
            f'<text x="{w / 2}" y="{title_y}" text-anchor="middle" font-size="14">{title}</text>']


def legend(out, entries, x0, step, y):
    """One row of coloured squares and labels: `entries` are (label, colour), the k-th at x0 + k*step."""
    for k, (label, colour) in enumerate(entries):
        x = x0 + k * step
        out.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{x + 16}" y="{y + 10}">{label}</text>')


def write(out, path, tool):
    """Closes the document and writes it to `path`."""
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"{tool}: wrote", path)
