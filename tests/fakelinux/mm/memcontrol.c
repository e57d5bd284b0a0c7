/* fake mm/memcontrol.c: a patch of the harness's tests changes this line */
int memcg_charge = 1;
