"""dmrx.quant — see ARCHITECTURE.md; filled in by later issues."""
