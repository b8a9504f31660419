"""dmrx.explain — see ARCHITECTURE.md; filled in by later issues."""
