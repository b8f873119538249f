"""Demo data: the simulated clinics, their staff and the seeder."""
