"""Issuers: how a principal becomes a token.

- :mod:`.base`: the :class:`~.base.Issuer` protocol, :class:`~.base.IssueRequest` and the
  HTTP timeouts/retries a remote provider is called with;
- :mod:`.signer`: claim layouts and the local JWT signer;
- :mod:`.remote`: providers that mint each token over HTTP (needs ``embedgate[http]``);
- :mod:`.signed_url`: providers whose "token" is a signed URL.
"""
