"""Energy accounting behind `all_smi_energy_consumed_joules_total`: meter, state file, account."""
