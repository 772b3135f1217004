"""Local servers that speak the real wire formats (WooCommerce REST v3, OpenAI, Anthropic).

They exist so a store owner can try enrich without touching a live shop or paying for a
model, and so the tests and benchmarks talk real HTTP to something that behaves, and
misbehaves, like the real services.
"""
