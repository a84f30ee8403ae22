"""Start-up of OpenHTF to its first phase: prints the wall clock (Unix ns) when the phase starts.

Run by bench/compare.py, which subtracts the time it spawned this process.
"""

import time

import openhtf as htf


def first_phase(test):  # pylint: disable=unused-argument
  print('FIRST_PHASE_UNIX_NS=%d' % time.time_ns(), flush=True)


if __name__ == '__main__':
  htf.conf.load(station_id='bench-station')
  htf.Test(first_phase, test_name='bench').execute(
      test_start=lambda: 'BENCH-DUT-0001')
