import os

# Qt without a screen, and torch kept to the machine's two cores so tests do not oversubscribe.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "2")
