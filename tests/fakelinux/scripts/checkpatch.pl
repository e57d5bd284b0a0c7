#!/usr/bin/perl
# A fake checkpatch.pl: one warning per patch, or a hang when FAKELINUX_HANG says so.
sleep($ENV{FAKELINUX_HANG}) if $ENV{FAKELINUX_HANG};
my $patch = $ARGV[-1];
print "$patch:1: WARNING:FAKE: a warning from the fake checkpatch\n";
