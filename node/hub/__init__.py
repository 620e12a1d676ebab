"""The hub role: a store-and-forward relay speaking the IPPC ePhyto Hub contract."""
