"""Who the workforce is, what it is paid and what the data miss: equality indicators, pay
parity across sectors, data gaps and the unpaid workforce."""
