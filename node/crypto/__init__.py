"""Cryptographic building blocks shared by identities, envelopes and the directory."""
