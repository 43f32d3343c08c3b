"""Files the window ships with: the stylesheet, icons and a Linux desktop entry (package data)."""
