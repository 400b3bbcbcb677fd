"""Software updates: verified packages (TUF/Uptane), the UDS programming sequence, audit."""
