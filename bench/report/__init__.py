"""Reports from run folders: leaderboards, their exports (CSV, LaTeX, Markdown), figures and
sprite GIFs."""
