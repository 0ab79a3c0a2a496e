"""Model loaders and small trained heads (imported lazily by the scorers)."""
