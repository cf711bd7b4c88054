"""textrisk."""
