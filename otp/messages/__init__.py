"""What is sent to users: message templates per channel and locale, SMS encoding."""
