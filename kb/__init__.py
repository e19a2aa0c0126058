"""excon knowledge base."""
