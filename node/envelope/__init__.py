"""The sealed envelope (signed, HPKE-encrypted) and the signed receipt: pure byte formats."""
