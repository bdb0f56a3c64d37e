module tlsexpiry

go 1.21
