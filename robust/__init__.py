"""dmrx.robust — see ARCHITECTURE.md; filled in by later issues."""
