"""dmrx.nn — see ARCHITECTURE.md; filled in by later issues."""
