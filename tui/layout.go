package tui

import (
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// fit makes s exactly h lines, none wider than w: long lines are cut,
// missing lines added, extra lines dropped.
func fit(s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		if lipgloss.Width(l) > w {
			lines[i] = ansi.Truncate(l, w, "")
		}
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}

// truncate cuts plain or styled text to w cells.
func truncate(s string, w int) string {
	if lipgloss.Width(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, "")
}

// pad makes plain text exactly w cells wide, cut or padded with spaces.
func pad(s string, w int) string {
	n := lipgloss.Width(s)
	if n > w {
		return ansi.Truncate(s, w, "")
	}
	return s + strings.Repeat(" ", w-n)
}

// helpLine draws the keys of the current screen on one line; what does not
// fit is left out (the keys come most important first).
func helpLine(t *Theme, keys []Binding, w int) string {
	var b strings.Builder
	used := 0
	for _, k := range keys {
		item := k.Key + " " + k.Help
		n := len(item)
		if used > 0 {
			n += 2
		}
		if used+n > w {
			break
		}
		if used > 0 {
			b.WriteString("  ")
		}
		b.WriteString(t.Key.Render(k.Key) + " " + k.Help)
		used += n
	}
	return b.String()
}

// columns lays out cells at fixed widths (the last one takes the rest);
// a cell is cut one short of its width, so cells never touch.
func columns(widths []int, cells ...string) string {
	var b strings.Builder
	for i, c := range cells {
		if i < len(widths) {
			b.WriteString(pad(c, widths[i]-1) + " ")
			continue
		}
		b.WriteString(c)
	}
	return b.String()
}
