"""Cryptography: the payload codec, secrets sealed at rest, code derivation and subkeys."""
