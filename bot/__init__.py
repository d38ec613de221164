"""SMS/USSD helpline for migrants."""
