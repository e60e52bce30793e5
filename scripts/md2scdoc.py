#!/usr/bin/env python3
"""Turns docs/dataplaned.md into the scdoc source of the dataplaned(8) man
page, so that the man page is the project's own documentation and cannot
drift from it.  scdoc(1) then makes the roff (meson does both at build
time).

    md2scdoc.py <dataplaned.md> <section> <one-line summary> > dataplaned.8.scd

What it understands is what docs/dataplaned.md uses: "#" headings (the
first is the page title, its first paragraph the description), paragraphs,
"-" and "1." lists, indented code blocks, pipe tables, `code` and *emphasis*.
Tables become a term/description list (a man page is 80 columns wide).
"""
import re
import sys


def escape(text):
    """Normal text: scdoc's markup characters become literal."""
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_")


def inline(text):
    """Markdown inline markup into scdoc's: `code` -> bold, *em* -> underline."""
    out = []
    pos = 0
    for m in re.finditer(r"`([^`]+)`|(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])", text):
        out.append(escape(text[pos:m.start()]))
        if m.group(1) is not None:
            out.append("*" + escape(m.group(1)) + "*")
        else:
            out.append("_" + escape(m.group(2)) + "_")
        pos = m.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def table_cells(line):
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    cells = re.split(r"(?<!\\)\|", line)
    return [c.strip().replace("\\|", "|") for c in cells]


def convert(lines, section, summary):
    out = []
    i = 0
    title = None
    n = len(lines)

    def para_end(j):
        """A paragraph runs until a blank line or the start of a block."""
        return (j >= n or not lines[j].strip() or lines[j].startswith("#")
                or lines[j].startswith("    ") or lines[j].startswith("|")
                or re.match(r"^(- |\d+\. )", lines[j]))

    while i < n:
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        m = re.match(r"^(#+)\s+(.*)$", line)
        if m:
            level, text = len(m.group(1)), m.group(2)
            if level == 1 and title is None:
                title = re.sub(r"`", "", text).strip()
                out.append("%s(%s)" % (title, section))
                out.append("")
                # The first paragraph is the description.
                i += 1
                while i < n and not lines[i].strip():
                    i += 1
                j = i
                while not para_end(j):
                    j += 1
                desc = " ".join(l.strip() for l in lines[i:j])
                out.append("# NAME")
                out.append("")
                out.append("%s - %s" % (title, escape(summary)))
                out.append("")
                out.append("# SYNOPSIS")
                out.append("")
                out.append("*%s* [_options_]" % title)
                out.append("")
                out.append("# DESCRIPTION")
                out.append("")
                out.append(inline(desc))
                out.append("")
                i = j
                continue
            # Headings are plain text in scdoc: no markup, no escapes.
            text = text.replace("`", "")
            out.append(("# " + text.upper()) if level <= 2 else ("## " + text))
            out.append("")
            i += 1
            continue
        if line.startswith("    "):
            block = []
            while i < n and (lines[i].startswith("    ") or
                             (not lines[i].strip() and i + 1 < n and
                              lines[i + 1].startswith("    "))):
                block.append(lines[i][4:] if lines[i].strip() else "")
                i += 1
            out.append("```")
            out.extend(b.replace("\\", "\\\\") for b in block)
            out.append("```")
            out.append("")
            continue
        if line.startswith("|"):
            rows = []
            while i < n and lines[i].startswith("|"):
                rows.append(table_cells(lines[i]))
                i += 1
            header, body = rows[0], [r for r in rows[1:]
                                     if not re.match(r"^[-: ]+$", "".join(r))]
            for r in body:
                out.append("*" + escape(r[0].replace("`", "")) + "*")
                rest = []
                for h, c in zip(header[1:], r[1:]):
                    if c:
                        rest.append("%s: %s" % (h, c) if len(header) > 2
                                    else c)
                out.append("\t" + inline("; ".join(rest)))
                out.append("")
            continue
        m = re.match(r"^(- |\d+\. )(.*)$", line)
        if m:
            while i < n:
                m = re.match(r"^(- |\d+\. )(.*)$", lines[i])
                if not m:
                    break
                item = [m.group(2).strip()]
                i += 1
                while i < n and lines[i].startswith("  ") and \
                        not re.match(r"^(- |\d+\. )", lines[i]):
                    item.append(lines[i].strip())
                    i += 1
                bullet = "-" if m.group(1) == "- " else "."
                out.append("%s %s" % (bullet, inline(" ".join(item))))
                while i < n and not lines[i].strip() and i + 1 < n and \
                        re.match(r"^(- |\d+\. )", lines[i + 1]):
                    i += 1
            out.append("")
            continue
        j = i
        while not para_end(j):
            j += 1
        out.append(inline(" ".join(l.strip() for l in lines[i:j])))
        out.append("")
        i = j
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 4:
        sys.stderr.write("usage: md2scdoc.py <file.md> <section> <summary>\n")
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        lines = f.read().split("\n")
    sys.stdout.write(convert(lines, sys.argv[2], sys.argv[3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
