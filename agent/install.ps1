<#
.SYNOPSIS
  install.ps1: register this Windows server with AWS Systems Manager through the activation broker.

.DESCRIPTION
  The Windows twin of install.sh (same steps, same options, same exit codes); Windows PowerShell
  5.1 and PowerShell 7. Run as Administrator:

    & ([scriptblock]::Create((Invoke-RestMethod 'https://BROKER/install.ps1')))
    & ([scriptblock]::Create((Invoke-RestMethod 'https://BROKER/install.ps1?pool=web'))) -Proxy http://proxy:3128

  In this order: check the prerequisites; find the SSM Agent, or download AmazonSSMAgentSetup.exe
  (or take -Package), check its Authenticode signature (valid, signed by Amazon) and install it
  without an activation; only then ask the broker for an Activation ID + Code (each answer
  reserves a registration, so a failed install never costs one); register with
  amazon-ssm-agent.exe -register; set the service to start automatically and start it; print the
  managed-node id. Every run converges: it ends registered, automatic and running (automatic only
  with -NoStart), or exits non-zero naming what is missing. A registered server is not registered
  again unless -Force; an installed agent is never reinstalled.
  This script is reviewed, not executed, in CI (no PowerShell there): test/agent parses it with
  tree-sitter-powershell and checks that it stays in step with install.sh.

  Exit codes (install.sh uses the same numbers):
     0  OK                    registered (now or before), enabled and running; -Help; -DryRun
     1  FAILURE               unexpected error
     2  USAGE                 bad option or value
     3  NOT_ROOT              must run as Administrator
     4  UNSUPPORTED           operating system or architecture not supported
    10  BROKER_UNREACHABLE    broker unreachable or still busy (429/5xx) when the retry budget ran out
    11  BROKER_REJECTED       broker refused the request (4xx, e.g. 404 PoolNotFound)
    12  BROKER_BAD_ANSWER     broker answer unusable (over 64 KB, not JSON, field missing or malformed)
    20  INSTALL_FAILED        agent missing, or its download, signature check or installation failed
    21  REGISTRATION_FAILED   SSM refused the registration (e.g. InvalidActivation, ActivationExpired)
    22  SERVICE_FAILED        agent service not enabled or not running, or no registration file
    23  DEREGISTER_FAILED     -Deregister: SSM still lists the node (local registration cleared)

  Sources: installing on Windows (AmazonSSMAgentSetup.exe /q /log F; with no CODE/ID/REGION it
  installs without registering), from https://amazon-ssm-<region>.s3.<region>.amazonaws.com/latest/windows_amd64/:
  https://docs.aws.amazon.com/systems-manager/latest/userguide/hybrid-multicloud-ssm-agent-install-windows.html
  Agent proxy on Windows (service Environment value):
  https://docs.aws.amazon.com/systems-manager/latest/userguide/configure-proxy-ssm-agent-windows.html
  Agent configuration %ProgramFiles%\Amazon\SSM\amazon-ssm-agent.json (an override laid over the
  defaults; Ssm.Endpoint also serves -register, Mds.Endpoint is ec2messages, Mgs.Endpoint
  ssmmessages), `-register -clear`, and the same sources as install.sh:
  https://github.com/aws/amazon-ssm-agent/blob/mainline/agent/appconfig/constants_windows.go
  https://github.com/aws/amazon-ssm-agent/blob/mainline/agent/appconfig/appconfig.go
  https://github.com/aws/amazon-ssm-agent/blob/mainline/core/agent_parser.go

  Verbose output (the tools' own messages) is the common parameter -Verbose.
#>
[CmdletBinding()]
param(
  # Broker base URL (env BROKER_URL; filled in when served by the broker). https only; http for loopback.
  [string]$Url = $(if ($env:BROKER_URL) { $env:BROKER_URL } else { '__BROKER_URL__' }),
  # Activation pool, [A-Za-z0-9_-]{1,64} (env BROKER_POOL); default pool if empty.
  [string]$Pool = $(if ($env:BROKER_POOL) { $env:BROKER_POOL } else { '__BROKER_POOL__' }),
  # Region to download the agent from and register in (default: the broker's answer; needed before
  # the broker is asked when the agent must be downloaded and the broker URL names no region).
  [string]$Region = '',
  # PEM CA certificates to verify the broker's TLS certificate with (broker only; never disables checks).
  [string]$CaBundle = '',
  # HTTP(S) proxy for the broker, the download and the agent service (default: $env:HTTPS_PROXY).
  [string]$Proxy = $(if ($env:HTTPS_PROXY) { $env:HTTPS_PROXY } else { '' }),
  # Comma-separated hosts the agent reaches directly (169.254.169.254 is always added).
  [string]$NoProxy = '',
  # Reach SSM through this endpoint (e.g. an interface VPC endpoint); written to the agent's
  # configuration (Ssm.Endpoint) before it registers, so the registration goes there too.
  [string]$SsmEndpoint = '',
  # The same for ec2messages (Mds.Endpoint).
  [string]$Ec2messagesEndpoint = '',
  # The same for ssmmessages (Mgs.Endpoint).
  [string]$SsmmessagesEndpoint = '',
  # Register this agent executable; nothing is installed.
  [string]$AgentPath = '',
  # Install this local AmazonSSMAgentSetup.exe or .msi (Authenticode-checked as the download is).
  [string]$Package = '',
  # A copy of the regional agent bucket (https): latest/windows_amd64/AmazonSSMAgentSetup.exe comes from there.
  [string]$MirrorUrl = '',
  # Re-register even if already registered (the agent is never uninstalled).
  [switch]$Force,
  # Register and set the service to start automatically, but do not start it now.
  [switch]$NoStart,
  # Deregister the node with SSM (aws CLI, credentials from the environment), clear the local
  # registration, stop and disable the agent.
  [switch]$Deregister,
  # Total seconds to keep retrying a busy or unreachable broker.
  [int]$MaxWait = 300,
  # Print the plan and change nothing (the broker is not called: every answer reserves a registration).
  [switch]$DryRun,
  # Errors only (the output still carries the node id).
  [switch]$Quiet,
  # Append every message and the tools' output to this file (the code is masked).
  [string]$LogFile = '',
  [switch]$Help
)
Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

$EXIT_OK = 0
$EXIT_FAILURE = 1
$EXIT_USAGE = 2
$EXIT_NOT_ROOT = 3
$EXIT_UNSUPPORTED = 4
$EXIT_BROKER_UNREACHABLE = 10
$EXIT_BROKER_REJECTED = 11
$EXIT_BROKER_BAD_ANSWER = 12
$EXIT_INSTALL_FAILED = 20
$EXIT_REGISTRATION_FAILED = 21
$EXIT_SERVICE_FAILED = 22
$EXIT_DEREGISTER_FAILED = 23

# The broker's answer is a few hundred bytes; anything past this is refused unread (exit 12).
$MaxAnswerBytes = 65536

# An unrendered copy still holds the markers: treat as unset.
if ($Url -like '__BROKER_*__') { $Url = '' }
if ($Pool -like '__BROKER_*__') { $Pool = '' }

$RegFile = Join-Path $env:ProgramData 'Amazon\SSM\InstanceData\registration'
$AgentDir = Join-Path $env:ProgramFiles 'Amazon\SSM'
$AgentExe = if ($AgentPath) { $AgentPath } else { Join-Path $AgentDir 'amazon-ssm-agent.exe' }
$AgentConfig = Join-Path $AgentDir 'amazon-ssm-agent.json'
$ServiceName = 'AmazonSSMAgent'
$LogLevel = if ($Quiet) { 0 } elseif ($PSBoundParameters.ContainsKey('Verbose')) { 2 } else { 1 }
$script:ActCode = ''

function Write-Entry([int]$Level, [string]$Message) {
  if ($script:LogFile) { Add-Content -LiteralPath $script:LogFile -Value "$(Get-Date -Format s) install.ps1: $Message" -ErrorAction SilentlyContinue }
  if ($LogLevel -ge $Level) { [Console]::Error.WriteLine("install.ps1: $Message") }
}
function Write-Log([string]$Message) { Write-Entry 1 $Message }
function Write-Detail([string]$Message) { Write-Entry 2 $Message }
function Stop-Install([int]$Code, [string]$Message) {
  Write-Entry 0 "error: $Message"
  exit $Code
}
function Get-Safe([string]$Text) { if (-not $Text) { return '' }; $t = $Text -replace '[^\x20-\x7E]', ' '; return $t.Substring(0, [Math]::Min(300, $t.Length)) }
# A tool's output, the code masked: to the log file, and to stderr with -Verbose or on failure.
function Write-ToolOutput([string]$Text, [bool]$Failed) {
  if (-not $Text) { return }
  if ($script:ActCode) { $Text = $Text.Replace($script:ActCode, '***') }
  foreach ($line in ($Text.TrimEnd() -split "`r?`n")) {
    if ($script:LogFile) { Add-Content -LiteralPath $script:LogFile -Value "  | $line" -ErrorAction SilentlyContinue }
    if ($LogLevel -ge 2 -or ($Failed -and $LogLevel -ge 1)) { [Console]::Error.WriteLine("  | $line") }
  }
}

if ($Help) { Get-Help -Detailed $PSCommandPath 2>$null; if (-not $PSCommandPath) { Write-Output 'See the header of install.ps1 for the options.' }; exit $EXIT_OK }

# --- arguments -------------------------------------------------------------------------------
function Test-Loopback([string]$U) { return $U -match '^http://(127\.[0-9.]+|localhost|\[::1\])(:[0-9]+)?(/|$)' }
function Test-Endpoint([string]$U) { return ($U -match '^https?://[\[\]A-Za-z0-9.:-]+/?$') -and ($U -like 'https://*' -or (Test-Loopback $U)) }
if (-not $Url -and -not $Deregister) { Stop-Install $EXIT_USAGE 'no broker URL: pass -Url, or download this script from the broker (GET /install.ps1)' }
if ($Url) {
  if ($Url -notmatch '^https?://[\[\]A-Za-z0-9.:-]+(/[A-Za-z0-9._~%/-]*)?$') { Stop-Install $EXIT_USAGE '-Url must look like https://host[:port][/path]' }
  if ($Url -like 'http://*' -and -not (Test-Loopback $Url)) { Stop-Install $EXIT_USAGE '-Url must use https (the answer holds a secret); plain http is accepted for loopback only' }
  $Url = $Url.TrimEnd('/')
}
if ($Pool -and $Pool -notmatch '^[A-Za-z0-9_-]{1,64}$') { Stop-Install $EXIT_USAGE '-Pool must match [A-Za-z0-9_-]{1,64}' }
$RegionPattern = '^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$'
if ($Region -and $Region -cnotmatch $RegionPattern) { Stop-Install $EXIT_USAGE "-Region '$(Get-Safe $Region)' is not a region name" }
if ($CaBundle -and -not (Test-Path -LiteralPath $CaBundle -PathType Leaf)) { Stop-Install $EXIT_USAGE "-CaBundle '$CaBundle' is not a readable file" }
if ($Proxy -and $Proxy -notmatch '^https?://[^\s"\\]+$') { Stop-Install $EXIT_USAGE '-Proxy must look like http://host:port' }
if ($NoProxy -notmatch '^[A-Za-z0-9.,:*/_-]*$') { Stop-Install $EXIT_USAGE '-NoProxy must be a comma-separated host list' }
foreach ($e in @(@('-SsmEndpoint', $SsmEndpoint), @('-Ec2messagesEndpoint', $Ec2messagesEndpoint), @('-SsmmessagesEndpoint', $SsmmessagesEndpoint))) {
  if ($e[1] -and -not (Test-Endpoint $e[1])) { Stop-Install $EXIT_USAGE "$($e[0]) must look like https://host[:port]" }
}
if ($AgentPath -and $Package) { Stop-Install $EXIT_USAGE '-AgentPath and -Package exclude each other' }
if ($Package) {
  if (-not (Test-Path -LiteralPath $Package -PathType Leaf)) { Stop-Install $EXIT_USAGE "-Package '$Package' is not a readable file" }
  if ($Package -notmatch '\.(exe|msi)$') { Stop-Install $EXIT_USAGE '-Package must be AmazonSSMAgentSetup.exe or an .msi' }
}
if ($MirrorUrl) {
  if ($MirrorUrl -notmatch '^https?://[\[\]A-Za-z0-9.:-]+(/[A-Za-z0-9._~%/-]*)?$' -or ($MirrorUrl -like 'http://*' -and -not (Test-Loopback $MirrorUrl))) { Stop-Install $EXIT_USAGE '-MirrorUrl must look like https://host[:port][/path]' }
  $MirrorUrl = $MirrorUrl.TrimEnd('/')
}
if ($MaxWait -lt 0) { Stop-Install $EXIT_USAGE '-MaxWait must be a whole number of seconds' }
if ($Deregister -and ($Force -or $NoStart)) { Stop-Install $EXIT_USAGE '-Deregister cannot be combined with -Force or -NoStart' }
if ($LogFile) {
  $file = $LogFile; $script:LogFile = ''
  if ((Test-Path -LiteralPath $file) -and ((Get-Item -LiteralPath $file -Force).Attributes -band [IO.FileAttributes]::ReparsePoint)) { Stop-Install $EXIT_USAGE "-LogFile '$file' is a link" }
  try { Add-Content -LiteralPath $file -Value '' } catch { Stop-Install $EXIT_USAGE "-LogFile '$file' cannot be written" }
  $script:LogFile = $file
}

# --- platform --------------------------------------------------------------------------------
if ([Environment]::OSVersion.Platform -ne 'Win32NT') { Stop-Install $EXIT_UNSUPPORTED 'install.ps1 is for Windows; use install.sh on Linux' }
$Machine = if ($env:PROCESSOR_ARCHITEW6432) { $env:PROCESSOR_ARCHITEW6432 } else { $env:PROCESSOR_ARCHITECTURE }
if ($Machine -ne 'AMD64') { Stop-Install $EXIT_UNSUPPORTED "unsupported architecture '$Machine' (supported: AMD64)" }
$Folder = 'windows_amd64'
function Get-DownloadUrl([string]$R) {
  if ($MirrorUrl) { return "$MirrorUrl/latest/$Folder/AmazonSSMAgentSetup.exe" }
  return "https://amazon-ssm-$R.s3.$R.amazonaws.com/latest/$Folder/AmazonSSMAgentSetup.exe"
}
# The region of an API Gateway or VPC endpoint URL, so the agent can be fetched before the broker is asked.
function Get-UrlRegion([string]$U) {
  if ($U -match '\.([a-z]{2}(-[a-z]+)+-[0-9]{1,2})\.(vpce\.)?amazonaws\.com(\.cn)?(:[0-9]+)?(/|$)') { return $Matches[1] }
  return ''
}
$Endpoint = if ($Pool) { "$Url/activations/$Pool" } else { "$Url/" }

function Get-RegisteredId {
  if (-not (Test-Path -LiteralPath $RegFile)) { return $null }
  try { $id = (Get-Content -LiteralPath $RegFile -Raw | ConvertFrom-Json).ManagedInstanceID } catch { return $null }
  if ($id -cmatch '^mi-[0-9a-f]{17}$') { return $id } else { return $null }
}
function Get-RegisteredRegion {
  try { $r = "$((Get-Content -LiteralPath $RegFile -Raw | ConvertFrom-Json).Region)" } catch { return '' }
  if ($r -cmatch $RegionPattern) { return $r } else { return '' }
}
function Test-AgentInstalled { return (Test-Path -LiteralPath $AgentExe -PathType Leaf) }
function Get-AgentService { return Get-Service -Name $ServiceName -ErrorAction SilentlyContinue }

# The agent runs and names its version (`amazon-ssm-agent.exe -version`), or the install is not done.
function Test-Agent {
  $out = (& $AgentExe -version 2>&1 | Out-String)
  if ($LASTEXITCODE -ne 0 -or $out -notmatch 'SSM Agent version: ([0-9.]+)') { Write-ToolOutput $out $true; Stop-Install $EXIT_INSTALL_FAILED "$AgentExe -version did not report an SSM Agent version: the agent is not usable" }
  Write-Log "agent $($Matches[1]) at $AgentExe"
}

# --- broker ----------------------------------------------------------------------------------
[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
$TlsCallback = $null
if ($CaBundle) {
  # A compiled callback: a script block would run on a thread without a runspace.
  Add-Type -TypeDefinition @'
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
public static class BrokerTls {
  public static X509Certificate2Collection Roots = new X509Certificate2Collection();
  public static bool Validate(object sender, X509Certificate cert, X509Chain chain, SslPolicyErrors errors) {
    if (errors == SslPolicyErrors.None) return true;
    if (errors != SslPolicyErrors.RemoteCertificateChainErrors || cert == null) return false; // a name mismatch is never accepted
    var own = new X509Chain();
    own.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
    own.ChainPolicy.VerificationFlags = X509VerificationFlags.AllowUnknownCertificateAuthority;
    own.ChainPolicy.ExtraStore.AddRange(Roots);
    if (!own.Build(new X509Certificate2(cert))) return false;
    var root = own.ChainElements[own.ChainElements.Count - 1].Certificate;
    foreach (var r in Roots) { if (r.Thumbprint == root.Thumbprint) return true; }
    return false;
  }
}
'@
  $pem = Get-Content -LiteralPath $CaBundle -Raw
  foreach ($m in [regex]::Matches($pem, '-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----')) {
    [void][BrokerTls]::Roots.Add((New-Object System.Security.Cryptography.X509Certificates.X509Certificate2(, [Convert]::FromBase64String(($m.Groups[1].Value -replace '\s', '')))))
  }
  if ([BrokerTls]::Roots.Count -eq 0) { Stop-Install $EXIT_USAGE "-CaBundle '$CaBundle' holds no PEM certificate" }
  $TlsCallback = [System.Delegate]::CreateDelegate([System.Net.Security.RemoteCertificateValidationCallback], [BrokerTls].GetMethod('Validate'))
}

# Reads at most $MaxAnswerBytes + 1 bytes: a larger announced Content-Length is refused unread.
function Read-Bounded($Response) {
  if ($Response.ContentLength -gt $MaxAnswerBytes) { return @{ TooLarge = $true; Text = '' } }
  $stream = $Response.GetResponseStream()
  $buffer = New-Object byte[] ($MaxAnswerBytes + 1)
  $total = 0
  while ($total -lt $buffer.Length) {
    $n = $stream.Read($buffer, $total, $buffer.Length - $total)
    if ($n -le 0) { break }
    $total += $n
  }
  if ($total -gt $MaxAnswerBytes) { return @{ TooLarge = $true; Text = '' } }
  return @{ TooLarge = $false; Text = [Text.Encoding]::UTF8.GetString($buffer, 0, $total) }
}

function Invoke-Broker([string]$Uri) {
  $request = [System.Net.HttpWebRequest]::Create($Uri)
  $request.Method = 'GET'; $request.Accept = 'application/json'; $request.AllowAutoRedirect = $false
  $request.UserAgent = 'ssm-activation-broker-install/1 (windows)'; $request.Timeout = 30000; $request.ReadWriteTimeout = 30000
  if ($Proxy) { $request.Proxy = New-Object System.Net.WebProxy($Proxy, $true) }
  if ($TlsCallback) { $request.ServerCertificateValidationCallback = $TlsCallback }
  $response = $null
  try { $response = $request.GetResponse() } catch {
    $e = $_.Exception
    while ($e -and -not ($e -is [System.Net.WebException])) { $e = $e.InnerException }
    if ($e -and $e.Response) { $response = $e.Response } else { return @{ Status = 0; Body = ''; RetryAfter = ''; Error = (Get-Safe $_.Exception.Message) } }
  }
  try {
    $read = Read-Bounded $response
    if ($read.TooLarge) { Stop-Install $EXIT_BROKER_BAD_ANSWER "broker answer from GET $Uri is larger than $MaxAnswerBytes bytes: refused unread" }
    return @{ Status = [int]$response.StatusCode; Body = $read.Text; RetryAfter = "$($response.Headers['Retry-After'])"; Error = '' }
  } finally { $response.Close() }
}

function Get-ErrorSummary([string]$Body) {
  try { $e = ($Body | ConvertFrom-Json).error; if ($e.code) { return ", $(Get-Safe $e.code): $(Get-Safe $e.message)" } } catch { }
  return ''
}

# Capped exponential backoff with "equal jitter", in ms; same defaults as install.sh.
function Get-BackoffMs([int]$Attempt) {
  $ceiling = [Math]::Min(30000, 1000 * [Math]::Pow(2, [Math]::Min($Attempt - 1, 15)))
  $half = [int]($ceiling / 2)
  return $half + (Get-Random -Minimum 0 -Maximum ($half + 1))
}

# The answer is hostile input until each field has the shape SSM gives it (a lower-case UUID,
# a 20-250 character code, a region name); nothing else from it is used.
function Get-Activation {
  $started = Get-Date; $attempt = 0
  while ($true) {
    $attempt++
    $answer = Invoke-Broker $Endpoint
    $status = $answer.Status
    if ($status -eq 200) {
      try { $pair = $answer.Body | ConvertFrom-Json } catch { Stop-Install $EXIT_BROKER_BAD_ANSWER 'broker answer is not JSON' }
      $answer = $null
      if (-not ($pair -is [System.Management.Automation.PSCustomObject])) { Stop-Install $EXIT_BROKER_BAD_ANSWER 'broker answer is not a JSON object' }
      $fields = @{}
      foreach ($p in $pair.PSObject.Properties) { $fields[$p.Name] = "$($p.Value)" }
      $pair = $null
      if ("$($fields['ActivationId'])" -cnotmatch '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$') { Stop-Install $EXIT_BROKER_BAD_ANSWER 'broker answer has no valid ActivationId' }
      if ("$($fields['ActivationCode'])" -cnotmatch '^[A-Za-z0-9+/=]{20,250}$') { Stop-Install $EXIT_BROKER_BAD_ANSWER 'broker answer has no valid ActivationCode' }
      $r = if ($Region) { $Region } else { "$($fields['Region'])" }
      if ($r -cnotmatch $RegionPattern) { Stop-Install $EXIT_BROKER_BAD_ANSWER 'broker answer has no valid Region (pass -Region to override)' }
      return @{ Id = $fields['ActivationId']; Code = $fields['ActivationCode']; Region = $r }
    }
    $retryAfter = 0
    if ($status -eq 0) { $reason = "cannot reach the broker at ${Endpoint}: $($answer.Error)" }
    elseif ($status -eq 429 -or $status -eq 503) { $reason = "broker busy (HTTP $status$(Get-ErrorSummary $answer.Body))"; [void][int]::TryParse($answer.RetryAfter, [ref]$retryAfter) }
    elseif ($status -eq 500 -or $status -eq 502 -or $status -eq 504) { $reason = "broker failed (HTTP $status$(Get-ErrorSummary $answer.Body))" }
    elseif ($status -ge 400 -and $status -lt 500) { Stop-Install $EXIT_BROKER_REJECTED "broker refused the request GET $Endpoint (HTTP $status$(Get-ErrorSummary $answer.Body))" }
    else { Stop-Install $EXIT_BROKER_BAD_ANSWER "unexpected answer from the broker GET $Endpoint (HTTP $status)" }
    $delayMs = if ($retryAfter -gt 0) { $retryAfter * 1000 } else { Get-BackoffMs $attempt }
    $elapsedMs = ((Get-Date) - $started).TotalMilliseconds
    if ($elapsedMs + $delayMs -gt $MaxWait * 1000) { Stop-Install $EXIT_BROKER_UNREACHABLE "$reason; giving up after $attempt attempt(s) in $([int]($elapsedMs / 1000))s (-MaxWait $MaxWait)" }
    Write-Log "$reason; retrying in $($delayMs / 1000)s (attempt $attempt)"
    Start-Sleep -Milliseconds $delayMs
  }
}

# --- agent configuration ---------------------------------------------------------------------
$script:ConfigChanged = $false

function Set-AgentProxy {
  if (-not $Proxy) { return }
  $noProxy = '169.254.169.254' + $(if ($NoProxy) { ",$NoProxy" } else { '' })
  $value = @("http_proxy=$Proxy", "https_proxy=$Proxy", "no_proxy=$noProxy")
  $key = "HKLM:\SYSTEM\CurrentControlSet\Services\$ServiceName"
  $current = (Get-ItemProperty -Path $key -Name Environment -ErrorAction SilentlyContinue)
  if ($current -and (($current.Environment -join "`n") -eq ($value -join "`n"))) { return }
  Set-ItemProperty -Path $key -Name Environment -Type MultiString -Value $value
  $script:ConfigChanged = $true
  Write-Log "agent proxy set to $($Proxy -replace '//[^@/]*@', '//***@') in the $ServiceName service environment"
}

# Ssm/Mds/Mgs "Endpoint" merged into the agent's configuration (created if missing): the agent lays
# the file over its defaults, and `-register` takes its endpoint from it.
function Set-AgentEndpoints {
  if (-not ($SsmEndpoint -or $Ec2messagesEndpoint -or $SsmmessagesEndpoint)) { return }
  $config = New-Object PSObject
  $old = ''
  if (Test-Path -LiteralPath $AgentConfig) {
    $old = Get-Content -LiteralPath $AgentConfig -Raw
    try { $config = $old | ConvertFrom-Json } catch { Stop-Install $EXIT_INSTALL_FAILED "$AgentConfig is not valid JSON: fix it or remove it, then run again" }
  }
  foreach ($pair in @(@('Ssm', $SsmEndpoint), @('Mds', $Ec2messagesEndpoint), @('Mgs', $SsmmessagesEndpoint))) {
    if (-not $pair[1]) { continue }
    if (-not $config.PSObject.Properties[$pair[0]]) { $config | Add-Member -NotePropertyName $pair[0] -NotePropertyValue (New-Object PSObject) }
    $section = $config.($pair[0])
    if ($section.PSObject.Properties['Endpoint']) { $section.Endpoint = $pair[1] } else { $section | Add-Member -NotePropertyName Endpoint -NotePropertyValue $pair[1] }
  }
  $new = $config | ConvertTo-Json -Depth 20
  if ($old -and $new.Trim() -eq $old.Trim()) { Write-Detail 'agent configuration already holds the endpoints'; return }
  New-Item -ItemType Directory -Force -Path $AgentDir | Out-Null
  Set-Content -LiteralPath $AgentConfig -Value $new -Encoding ASCII
  $script:ConfigChanged = $true
  Write-Log "agent endpoints written to ${AgentConfig}: ssm '$SsmEndpoint' ec2messages '$Ec2messagesEndpoint' ssmmessages '$SsmmessagesEndpoint'"
}

# --- install (before the broker is asked) and register (after) -------------------------------
function Install-Agent {
  if ($Package) {
    $source = $Package
    $installer = Join-Path $work (Split-Path -Leaf $Package)
    Copy-Item -LiteralPath $Package -Destination $installer   # the file checked is the file installed
  } else {
    $r = if ($Region) { $Region } else { Get-UrlRegion $Url }
    if (-not $r -and -not $MirrorUrl) { Stop-Install $EXIT_USAGE 'the agent must be downloaded, and its region is not known before the broker is asked (the broker URL names none): pass -Region REGION, or -MirrorUrl, -Package or -AgentPath' }
    $source = Get-DownloadUrl $r
    $installer = Join-Path $work 'AmazonSSMAgentSetup.exe'
    Write-Log "downloading $source"
    $download = @{ Uri = $source; OutFile = $installer; UseBasicParsing = $true }
    if ($Proxy) { $download.Proxy = $Proxy }
    try { Invoke-WebRequest @download } catch { Stop-Install $EXIT_INSTALL_FAILED "cannot download ${source}: $(Get-Safe $_.Exception.Message) (no registration was taken)" }
  }
  $signature = Get-AuthenticodeSignature -FilePath $installer
  $signer = if ($signature.SignerCertificate) { $signature.SignerCertificate.Subject } else { '' }
  if ($signature.Status -ne 'Valid' -or $signer -notmatch '(^|,\s*)O="?Amazon(\.com)?[ ,."]') {
    Stop-Install $EXIT_INSTALL_FAILED "$source signature is not valid or not Amazon's (status $($signature.Status), signer '$signer'): not running it"
  }
  Write-Log "Authenticode signature valid ($signer)"
  $installLog = Join-Path $work 'install.log'
  # No CODE/ID/REGION: the installer only installs; the registration comes after the broker.
  if ($installer -like '*.msi') {
    $process = Start-Process -FilePath 'msiexec.exe' -Wait -PassThru -ArgumentList @('/i', "`"$installer`"", '/qn', '/l*v', "`"$installLog`"")
  } else {
    $process = Start-Process -FilePath $installer -Wait -PassThru -ArgumentList @('/q', '/log', "`"$installLog`"")
  }
  if (Test-Path -LiteralPath $installLog) { Write-ToolOutput (Get-Content -LiteralPath $installLog -Raw) ($process.ExitCode -ne 0) }
  if ($process.ExitCode -ne 0) { Stop-Install $EXIT_INSTALL_FAILED "$source failed (exit $($process.ExitCode)); no registration was taken" }
  if (-not (Test-AgentInstalled)) { Stop-Install $EXIT_INSTALL_FAILED "the installer finished but $AgentExe is missing" }
}

function Register-Agent($Pair) {
  Stop-Service -Name $ServiceName -ErrorAction SilentlyContinue
  $flags = @('-register', '-code', $Pair.Code, '-id', $Pair.Id, '-region', $Pair.Region, '-y')
  if ($Force) { $flags += '-clear' }
  Write-Log "running amazon-ssm-agent.exe -register -code *** -id $($Pair.Id) -region $($Pair.Region) -y$(if ($Force) { ' -clear' })"
  # The agent takes the code only as an argument: it is in its argv for this one call.
  $out = (& $AgentExe @flags 2>&1 | Out-String)
  $rc = $LASTEXITCODE
  $flags = $null
  Write-ToolOutput $out ($rc -ne 0)
  if ($rc -ne 0) { Stop-Install $EXIT_REGISTRATION_FAILED "the agent could not register (exit $rc)" }
}

# The end of every run but -Deregister: registered, automatic and running (automatic and stopped
# with -NoStart), or a non-zero exit naming what is missing.
function Complete-Install([bool]$Fresh) {
  $id = Get-RegisteredId
  if (-not $id) { Stop-Install $EXIT_SERVICE_FAILED "no registration: $RegFile holds no ManagedInstanceID" }
  $service = Get-AgentService
  if (-not $service) { Stop-Install $EXIT_SERVICE_FAILED "registered as $id, but there is no $ServiceName service" }
  try { Set-Service -Name $ServiceName -StartupType Automatic } catch { Stop-Install $EXIT_SERVICE_FAILED "registered as $id, but the $ServiceName service cannot be set to start automatically" }
  if ($NoStart) {
    if ($Fresh -and (Get-AgentService).Status -eq 'Running') { Stop-Service -Name $ServiceName }
    Write-Log "registered as managed node $id; $ServiceName automatic, not started (-NoStart)"
  } else {
    try {
      if ($script:ConfigChanged -and (Get-AgentService).Status -eq 'Running') { Restart-Service -Name $ServiceName }
      elseif ((Get-AgentService).Status -ne 'Running') { Write-Log "the $ServiceName service is not running: starting it"; Start-Service -Name $ServiceName }
    } catch { Stop-Install $EXIT_SERVICE_FAILED "registered as $id, but the $ServiceName service cannot be started: $(Get-Safe $_.Exception.Message)" }
    if ((Get-AgentService).Status -ne 'Running') { Stop-Install $EXIT_SERVICE_FAILED "registered as $id, but the $ServiceName service is not running" }
    Write-Log "registered as managed node $id; $ServiceName automatic and running"
  }
  Write-Output $id
}

function Invoke-Deregister {
  $id = Get-RegisteredId
  if (Get-AgentService) {
    Stop-Service -Name $ServiceName -ErrorAction SilentlyContinue
    Set-Service -Name $ServiceName -StartupType Disabled -ErrorAction SilentlyContinue
    Write-Log "$ServiceName stopped and disabled"
  }
  if (-not $id) { Write-Log 'not registered: nothing to deregister'; return }
  $r = if ($Region) { $Region } else { Get-RegisteredRegion }
  # Only an IAM principal may call DeregisterManagedInstance: the operator's credentials, through the AWS CLI.
  $failed = ''
  if (-not (Get-Command aws -ErrorAction SilentlyContinue)) { $failed = 'the AWS CLI (aws) is not installed' }
  elseif (-not $r) { $failed = 'the registration names no region (pass -Region)' }
  else {
    $awsArgs = @('ssm', 'deregister-managed-instance', '--instance-id', $id, '--region', $r)
    if ($SsmEndpoint) { $awsArgs += @('--endpoint-url', $SsmEndpoint) }
    Write-Log "running aws $($awsArgs -join ' ')"
    $out = (& aws @awsArgs 2>&1 | Out-String)
    Write-ToolOutput $out ($LASTEXITCODE -ne 0)
    if ($LASTEXITCODE -eq 0) { Write-Log "SSM deregistered $id" } else { $failed = "aws ssm deregister-managed-instance failed: $(Get-Safe $out.Trim())" }
  }
  if (Test-AgentInstalled) { Write-ToolOutput (& $AgentExe -register -clear 2>&1 | Out-String) ($LASTEXITCODE -ne 0) }
  Remove-Item -LiteralPath $RegFile -Force -ErrorAction SilentlyContinue
  Write-Log "local registration of $id cleared"
  if ($failed) { Stop-Install $EXIT_DEREGISTER_FAILED "$id is still registered with SSM ($failed): run 'aws ssm deregister-managed-instance --instance-id $id$(if ($r) { " --region $r" })' with credentials allowed to" }
}

# --- main ------------------------------------------------------------------------------------
$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $DryRun -and -not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) { Stop-Install $EXIT_NOT_ROOT 'run as Administrator' }
# Two runs at once (a startup task and a GPO script) must not both take a registration.
$mutex = New-Object System.Threading.Mutex($false, 'Global\ssm-activation-broker-install')
if (-not $DryRun) { try { [void]$mutex.WaitOne(900000) } catch [System.Threading.AbandonedMutexException] { } }

$existing = Get-RegisteredId
$installed = Test-AgentInstalled
if ($DryRun) {
  $r = if ($Region) { $Region } elseif (Get-UrlRegion $Url) { Get-UrlRegion $Url } else { '{region}' }
  Write-Output 'Plan (dry run: nothing is changed and the broker is not called):'
  Write-Output "  platform:  Windows $([Environment]::OSVersion.Version), arch $Machine"
  if ($Deregister) { Write-Output "  deregister: $(if ($existing) { $existing } else { 'nothing registered' }) (aws ssm deregister-managed-instance), clear it locally, stop and disable $ServiceName"; exit $EXIT_OK }
  if ($existing -and -not $Force) { Write-Output "  current:   registered as ${existing}: the broker is not called; the service is checked" }
  else {
    if ($existing) { Write-Output "  current:   registered as $existing; -Force: clear and re-register" }
    if ($installed) { Write-Output "  agent:     installed at $AgentExe" }
    elseif ($Package) { Write-Output "  install:   $Package (Authenticode: Valid, signed by Amazon), no activation" }
    else { Write-Output "  install:   $(Get-DownloadUrl $r) (Authenticode: Valid, signed by Amazon) /q, no activation" }
    Write-Output "  broker:    GET $Endpoint (after the agent is in place)"
    Write-Output "  region:    $(if ($Region) { $Region } else { 'from the broker answer' })"
    Write-Output "  register:  amazon-ssm-agent.exe -register -code *** -id <id> -region $r -y$(if ($Force) { ' -clear' })"
  }
  if ($Proxy) { Write-Output "  proxy:     $($Proxy -replace '//[^@/]*@', '//***@') in HKLM:\SYSTEM\CurrentControlSet\Services\$ServiceName Environment" }
  if ($SsmEndpoint -or $Ec2messagesEndpoint -or $SsmmessagesEndpoint) { Write-Output "  endpoints: Ssm '$SsmEndpoint' Mds '$Ec2messagesEndpoint' Mgs '$SsmmessagesEndpoint' in $AgentConfig" }
  Write-Output "  service:   $(if ($NoStart) { "automatic, not started (-NoStart)" } else { "start $ServiceName (automatic)" })"
  Write-Output "  verify:    $RegFile holds ManagedInstanceID"
  exit $EXIT_OK
}

$work = Join-Path ([IO.Path]::GetTempPath()) ('ssm-install-' + [Guid]::NewGuid().ToString('N'))
New-Item -ItemType Directory -Path $work | Out-Null
try {
  if ($Deregister) { Invoke-Deregister; exit $EXIT_OK }
  if ($Proxy) { $env:https_proxy = $Proxy; $env:http_proxy = $Proxy; $env:no_proxy = "169.254.169.254$(if ($NoProxy) { ",$NoProxy" })" }
  if ($existing -and -not $Force) {
    # Converge: a registered server is never registered again, but its service is made to run.
    Write-Log "already registered as managed node $existing (-Force re-registers)"
    if (-not $installed) { Stop-Install $EXIT_SERVICE_FAILED "registered as $existing, but no SSM Agent is installed: run again with -Force to install and re-register it" }
    Set-AgentProxy
    Set-AgentEndpoints
    Complete-Install $false
    exit $EXIT_OK
  }
  # 1-2. The agent, found or installed and verified. Nothing is reserved yet.
  if (-not $installed) {
    if ($AgentPath) { Stop-Install $EXIT_INSTALL_FAILED "-AgentPath '$AgentPath' is not an executable file" }
    Install-Agent
  }
  Test-Agent
  Set-AgentProxy
  Set-AgentEndpoints
  # 3. Only now a pair from the broker, and 4. the registration.
  Set-PSDebug -Off   # tracing would print the code (the "set +x" of install.sh)
  $pair = Get-Activation
  $script:ActCode = $pair.Code
  Write-Log "got activation $($pair.Id) (region $($pair.Region)$(if ($Pool) { ", pool $Pool" }))"
  Register-Agent $pair
  $pair = $null
  $script:ConfigChanged = $false
  # 5. Automatic and running (or automatic only, -NoStart), and verified.
  Complete-Install $true
  exit $EXIT_OK
} catch {
  Stop-Install $EXIT_FAILURE (Get-Safe $_.Exception.Message)
} finally {
  $pair = $null
  $script:ActCode = ''
  Remove-Item -LiteralPath $work -Recurse -Force -ErrorAction SilentlyContinue
  if (-not $DryRun) { try { $mutex.ReleaseMutex() } catch { } }
}
