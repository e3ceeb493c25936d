#!/usr/bin/python3
"""readme2man.py README spoold/spoold.conf.5 - spoold.conf(5) from the README's
directive tables, so the two never disagree: edit the README, run this, commit
both (tests/t28-manpages.sh checks the page against the parser)."""
import re, sys, textwrap
src=open(sys.argv[1]).read()
sec=src[src.index("Configuration (spoold.conf)\n"):src.index("\nThe SMTP receiver\n")]
def inline(t):
    t=t.replace('\\|','|')
    t=t.replace('\\','\\e')
    t=re.sub(r'`([^`]*)`', lambda m: '\\fB'+m.group(1)+'\\fR', t)
    t=t.replace(' - ',' \\- ')
    return t
def rows(block):
    out=[]
    for line in block.splitlines():
        if line.startswith('| `'):
            cells=[c.strip() for c in re.split(r'(?<!\\)\|', line)[1:-1]]
            out.append(cells)
    return out
top,dom=sec.split("Inside `domain NAME { ... }`:")
def tp(cells):
    d,m,dflt=cells
    s='.TP\n'+inline(d)+'\n'+inline(m)+('.' if not m.endswith('.') else '')
    if dflt == 'required':
        s+='\nRequired.'
    elif dflt:
        s+='\nDefault: '+inline(dflt)+'.'
    return s
man=[]
man.append('.TH SPOOLD.CONF 5 "2026-12-03" "spoold 0.1.0" "File Formats Manual"')
man.append('.SH NAME\nspoold.conf \\- configuration of the spoold mail spooling server')
man.append('.SH DESCRIPTION\n.B spoold\nreads its configuration from\n.I /etc/spoold/spoold.conf\nor the file given with\n.BR \\-c .\nOne directive a line; \\fB#\\fR starts a comment; "double quotes" hold values with blanks.\nSizes take \\fBK\\fR, \\fBM\\fR, \\fBG\\fR (1024-based), durations \\fBs\\fR, \\fBm\\fR, \\fBh\\fR, \\fBd\\fR (a bare number is seconds).\nA directive given twice is an error, except those said to be repeatable.')
man.append('.SH GLOBAL DIRECTIVES')
for c in rows(top): man.append(tp(c))
man.append('.SH DOMAIN DIRECTIVES\nInside\n.B domain\n.I NAME\n.B {\n\\&...\n.BR } :')
dom_rows=rows(dom)
for c in dom_rows: man.append(tp(c))
rest=dom.split('\n\n')
man.append('.SH WARNINGS\n.B spoold \\-n\nwarns about \\fBdeliver-to requester\\fR with an \\fBetrn-from\\fR range (any host in the range could pull the mail) and about \\fBrecipients any\\fR on a backup domain (it makes backscatter).')
man.append('.SH EXAMPLE\n.nf\nhostname mx.example.net\nlisten smtp 0.0.0.0:25 [::]:25\nlisten odmr 0.0.0.0:366\ndatadir /var/lib/spoold\nuser spoold\ntls-cert /etc/spoold/cert.pem\ntls-key /etc/spoold/key.pem\nmilter rspamd inet:127.0.0.1:11332\n\ndomain customer.example {\n    recipients /etc/spoold/customer.example.recipients\n    etrn-from 198.51.100.0/28\n    deliver-to mx\n    tls verify\n}\n.fi')
man.append('.SH SEE ALSO\n.BR spoold (8),\n.BR spoolctl (8),\n.BR etrnclient (8),\n.BR etrnclient.conf (5)')
text='\n'.join(man)+'\n'
out=[]
fill=True
for line in text.splitlines():
    if line.startswith('.nf'): fill=False
    if line.startswith('.fi'): fill=True
    if fill and not line.startswith('.') and len(line)>78:
        # break at blanks outside font escapes; never start a line with '.'
        ws=textwrap.wrap(line,78,break_long_words=False,break_on_hyphens=False)
        for w in ws:
            out.append(('\\&'+w) if w.startswith(('.',"'")) else w)
    else:
        out.append(line)
open(sys.argv[2],'w').write('\n'.join(out)+'\n')
