"""The SMS message language of smsgate."""
